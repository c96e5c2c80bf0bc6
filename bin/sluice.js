#!/usr/bin/env node
// Modules run in the order they are imported: check-node.js, written for old Node, exits with
// what to do on a Node older than "engines" before start-cli.js loads any of Sluice.
import "./check-node.js";
import "./start-cli.js";
