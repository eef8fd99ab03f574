// The TLS section's table (bench/run.mjs with BENCH_ONLY=tls, and report.mjs):
// HTTP actions on one hot actor over plain HTTP/1.1, HTTPS HTTP/1.1 and HTTP/2.
export function tlsTable(t) {
  const f = (x, d = 1) => (x === undefined || x === null ? "—" : Number(x).toFixed(d));
  const rows = [
    "| conc | plain HTTP/1.1 ops/s (p50 / p99 ms) | HTTPS HTTP/1.1 ops/s (p50 / p99 ms) | HTTPS HTTP/2 ops/s (p50 / p99 ms) | server CPU plain / https / h2 |",
    "|---:|---:|---:|---:|---:|",
  ];
  for (const conc of [1, 16, 64]) {
    const c = (k) => t[`${k}_c${conc}`] ?? {};
    const v = (k) => `${f(c(k).per_second)} (${f(c(k).p50_ms, 2)} / ${f(c(k).p99_ms, 2)})`;
    const cpu = ["http", "https", "h2"].map((k) => `${c(k).server_cpu_pct ?? "—"} %`).join(" / ");
    rows.push(`| ${conc} | ${v("http")} | ${v("https")} | ${v("h2")} | ${cpu} |`);
  }
  return rows.join("\n");
}
