import { Legacy } from "../_shared/ui/Legacy.jsx";
Deno.serve(() => new Response(String(<Legacy />)));
