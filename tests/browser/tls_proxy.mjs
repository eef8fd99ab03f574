// A TLS + HTTP/2 front for anvil, for the browser test only.
//
// Chromium sends rivetkit's streamed request bodies (`duplex: "half"`) only
// over HTTP/2, and browsers speak HTTP/2 only over TLS. Anvil serves
// HTTP/1.1 (like a service behind a TLS-terminating proxy in production), so
// the test puts this proxy in front: h2 (and HTTP/1.1 for WebSocket upgrades)
// in, plain HTTP/1.1 to anvil out. Bodies and headers pass through unchanged.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import path from "node:path";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host"]);

export function selfSignedCert(dir) {
  const key = path.join(dir, "key.pem");
  const cert = path.join(dir, "cert.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { stdio: "ignore" });
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
}

export async function startTlsProxy({ targetPort, tlsDir }) {
  const { key, cert } = selfSignedCert(tlsDir);
  const server = http2.createSecureServer({ key, cert, allowHTTP1: true });
  server.on("request", (req, res) => {
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (k.startsWith(":") || HOP_BY_HOP.has(k)) continue;
      headers[k] = v;
    }
    headers.host = `127.0.0.1:${targetPort}`;
    const up = http.request(
      { host: "127.0.0.1", port: targetPort, method: req.method, path: req.url, headers },
      (upRes) => {
        const out = {};
        for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
        res.writeHead(upRes.statusCode, out);
        upRes.pipe(res);
      },
    );
    up.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  // WebSocket upgrades arrive over HTTP/1.1: splice the raw sockets.
  server.on("upgrade", (req, socket, head) => {
    const up = net.connect(targetPort, "127.0.0.1", () => {
      let lines = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(`${lines}\r\n`);
      if (head?.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    const close = () => {
      up.destroy();
      socket.destroy();
    };
    up.on("error", close);
    socket.on("error", close);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: server.address().port, close: () => server.close() };
}
