#!/usr/bin/env node
import "../dist/cli/sluice.js";
