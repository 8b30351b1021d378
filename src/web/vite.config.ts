/** Builds the dashboard into src/web/dist, which the Worker serves as static assets (wrangler.toml [assets]). */
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The Worker serves what is here as it is; keep the budget test honest about what loads.
    modulePreload: { polyfill: false },
  },
});
