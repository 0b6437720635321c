export const json = (data: unknown) => Response.json(data);
