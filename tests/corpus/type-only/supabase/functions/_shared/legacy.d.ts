export default function legacy(): number;
