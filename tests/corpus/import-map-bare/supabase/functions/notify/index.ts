import { send } from "shared/mail.ts";
import { createClient } from "supabase";
Deno.serve(() => Response.json({ send: send(), c: typeof createClient }));
