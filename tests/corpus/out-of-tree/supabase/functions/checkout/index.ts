import { total } from "../../../packages/domain/src/order.ts";
import { ok } from "../_shared/ok.ts";
Deno.serve(() => new Response(String(total([1, 2]) && ok)));
