export const cors = { "Access-Control-Allow-Origin": "*" };
