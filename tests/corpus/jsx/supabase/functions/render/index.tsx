import { Button } from "../_shared/ui/Button.tsx";
import { Legacy } from "../_shared/ui/Legacy.jsx";
Deno.serve(() => new Response(String(<div><Button label="ok" /><Legacy /></div>)));
