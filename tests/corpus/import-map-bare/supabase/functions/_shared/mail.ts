import { cors } from "cors";
export const send = () => cors;
