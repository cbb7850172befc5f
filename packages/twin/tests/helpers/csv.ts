/** Small valid CSV files in the job's input format (id,name,email,date,amount,status). */
export function customersCsv(ids: readonly number[], name = "Alice"): string {
  const rows = ids.map((id) => `${id},${name} ${id},user${id}@example.com,01-04-2025,${id}.50,active`);
  return `id,name,email,date,amount,status\n${rows.join("\n")}\n`;
}
