import { fmt } from "helpers/fmt.ts";
import { a } from "common/a.ts";
import Stripe from "stripe";
Deno.serve(() => new Response(fmt(a) + typeof Stripe));
