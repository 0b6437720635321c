import { query } from "../utils/db.ts";
import { helper } from "../lib/deep/nested/helper.js";
Deno.serve(() => new Response(query(String(helper()))));
