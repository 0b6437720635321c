/// <reference path="../_shared/globals.d.ts" />
/// <reference types="../_shared/env.d.ts" />
import type { User } from "../_shared/types.ts";
export type { Event } from "../_shared/events.ts";
// @deno-types="../_shared/legacy.d.ts"
import legacy from "../_shared/legacy.js";
import cjs = require("../_shared/cjs-style.ts");
const u: User = { id: String(legacy()) + cjs.value };
Deno.serve(() => Response.json(u));
