// functions/deno.json sits in the folder of the import map this deno.json names:
// Deno keys its scope "./" + "" + "/" and so never applies it.
import { now } from "@root-only/time.ts";
import { now as again } from "@/time.ts";
Deno.serve(() => new Response(now() + again()));
