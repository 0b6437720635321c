export default function legacy() { return 1; }
