export const routes = ["checkout"];
