import { db } from "../_shared/db.ts";
import { cache } from "../_shared/cache.ts";
Deno.serve(() => Response.json({ db, cache }));
