import { Button } from "./Button.tsx";
export function Legacy() { return <Button label="old" />; }
