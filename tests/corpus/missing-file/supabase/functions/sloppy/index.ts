import { db } from "../_shared/db";
import { log } from "../_shared/logger.ts";
import { h } from "../_shared/helpers";
import pad from "../_shared/node_modules/left-pad/index.js";
import notes from "../_shared/notes.txt";
Deno.serve(() => new Response(String([db, log, h, pad, notes])));
