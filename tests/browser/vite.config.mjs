// Bundles page/ with the rivetkit browser client. The client is the unchanged
// rivetkit@2.3.19 from npm, as installed in the shared reference harness.
import path from "node:path";
import { defineConfig } from "vite";

const shared = process.env.ANVIL_SHARED_DIR ?? path.resolve(import.meta.dirname, "../../../shared");

export default defineConfig({
  root: path.resolve(import.meta.dirname, "page"),
  logLevel: "error",
  resolve: {
    alias: {
      "rivetkit/client": path.join(shared, "rivet-ref/node_modules/rivetkit/dist/browser/client.js"),
    },
  },
  build: {
    outDir: process.env.BROWSER_OUT_DIR ?? path.resolve(import.meta.dirname, "dist"),
    emptyOutDir: true,
    minify: false,
  },
});
