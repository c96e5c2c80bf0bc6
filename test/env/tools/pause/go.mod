module sluice.dev/test-env/pause

go 1.26.0
