import countries from "../_shared/countries.json" with { type: "json" };
const plans = await import("../_shared/plans.json", { with: { type: "json" } });
Deno.serve(() => Response.json({ countries, plans }));
