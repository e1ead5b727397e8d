#!/usr/bin/env node
// Runs the TypeScript entry point in this very process (tsx's loader), so `npx sovereign` works from
// a clone without a build, and a signal sent to this process reaches the server itself.
import { register } from "tsx/esm/api"

register()
await import("../src/bin.ts")
