/**
 * The Dockerfile a git build makes for a repository without one: the language each marker
 * file tells, and the Dockerfile for each language (its base image from the configured
 * registry, its install step, and a command that listens on the app's port). Only the
 * static one is built for real (test/node/git-builds.test.ts): the others' base images are
 * not in the local registry.
 */
import { describe, expect, it } from "vitest";
import { baseImage, cargoPackageName, detectLanguage, generateDockerfile } from "../src/build/dockerfile.ts";

const REG = "127.0.0.1:5000/berth";
const gen = (language: Parameters<typeof generateDockerfile>[0], files: string[], extra: { packageJson?: string; cargoToml?: string } = {}, baseRegistry: string | null = REG) =>
  generateDockerfile(language, { files, ...extra }, { port: 3000, baseRegistry });

describe("detectLanguage", () => {
  it.each([
    [["package.json", "index.js"], "node"],
    [["requirements.txt", "app.py"], "python"],
    [["pyproject.toml"], "python"],
    [["go.mod", "main.go"], "go"],
    [["Gemfile", "config.ru"], "ruby"],
    [["composer.json"], "php"],
    [["index.php"], "php"],
    [["Cargo.toml", "src"], "rust"],
    [["index.html", "style.css"], "static"],
  ] as const)("%j is %s", (files, language) => {
    expect(detectLanguage(files)).toBe(language);
  });

  it("prefers the build tool's file over a plain index.html (a Node app with a public page is a Node app)", () => {
    expect(detectLanguage(["index.html", "package.json"])).toBe("node");
    expect(detectLanguage(["index.html", "index.php"])).toBe("php");
  });

  it("says null when nothing tells the language", () => {
    expect(detectLanguage(["README.md", "notes.txt"])).toBeNull();
    expect(detectLanguage([])).toBeNull();
  });
});

describe("generateDockerfile", () => {
  it("takes base images from the configured registry, or Docker Hub's names without one", () => {
    expect(baseImage("node:22-alpine", REG)).toBe(`${REG}/node:22-alpine`);
    expect(baseImage("node:22-alpine", `${REG}/`)).toBe(`${REG}/node:22-alpine`);
    expect(baseImage("node:22-alpine", null)).toBe("node:22-alpine");
    expect(gen("static", ["index.html"], {}, null)).toMatch(/^FROM busybox:1\.36$/m);
  });

  it("node: npm ci with a lockfile, npm start when there is a start script", () => {
    const d = gen("node", ["package.json", "package-lock.json", "server.js"], { packageJson: JSON.stringify({ scripts: { start: "node server.js" } }) });
    expect(d).toMatch(new RegExp(`^FROM ${REG}/node:22-alpine$`, "m"));
    expect(d).toContain("RUN npm ci --omit=dev");
    expect(d).toContain('CMD ["npm", "start"]');
    expect(d).toContain("ENV PORT=3000");
    expect(d).toContain("EXPOSE 3000");
  });

  it("node: npm install without a lockfile, node on package.json's main without a start script", () => {
    const d = gen("node", ["package.json", "app.js"], { packageJson: JSON.stringify({ main: "app.js" }) });
    expect(d).toContain("RUN npm install --omit=dev");
    expect(d).toContain('CMD ["node","app.js"]');
    expect(gen("node", ["package.json", "server.js"], { packageJson: "{not json" })).toContain('CMD ["node","server.js"]');
  });

  it("python: requirements or the project itself, then its entry file", () => {
    const d = gen("python", ["requirements.txt", "main.py"]);
    expect(d).toMatch(new RegExp(`^FROM ${REG}/python:3\\.12-slim$`, "m"));
    expect(d).toContain("RUN pip install --no-cache-dir -r requirements.txt");
    expect(d).toContain('CMD ["python","main.py"]');
    expect(gen("python", ["pyproject.toml", "app.py"])).toContain("RUN pip install --no-cache-dir .");
    expect(gen("python", ["requirements.txt", "manage.py"])).toContain("runserver 0.0.0.0:$PORT");
  });

  it("go: built in the Go image, run from a small one, both from the registry", () => {
    const d = gen("go", ["go.mod", "go.sum", "main.go"]);
    expect(d).toContain(`FROM ${REG}/golang:1.23-alpine AS build`);
    expect(d).toContain("RUN CGO_ENABLED=0 go build -o /out/app .");
    expect(d).toMatch(new RegExp(`^FROM ${REG}/alpine:3\\.20$`, "m"));
    expect(d).toContain('CMD ["/app"]');
  });

  it("ruby: bundle install, rackup on the port for a config.ru, else the app file", () => {
    const rack = gen("ruby", ["Gemfile", "Gemfile.lock", "config.ru"]);
    expect(rack).toMatch(new RegExp(`^FROM ${REG}/ruby:3\\.3-slim$`, "m"));
    expect(rack).toContain("RUN bundle install");
    expect(rack).toContain("rackup --host 0.0.0.0 --port $PORT");
    expect(gen("ruby", ["Gemfile", "app.rb"])).toContain('CMD ["bundle","exec","ruby","app.rb"]');
  });

  it("php: Apache moved to the app's port, composer only when there is a composer.json", () => {
    const plain = gen("php", ["index.php"]);
    expect(plain).toMatch(new RegExp(`^FROM ${REG}/php:8\\.3-apache$`, "m"));
    expect(plain).toContain("80\\b/\\13000/' /etc/apache2/ports.conf");
    expect(plain).not.toContain("composer");
    const withComposer = gen("php", ["composer.json", "index.php"]);
    expect(withComposer).toContain(`COPY --from=${REG}/composer:2 /usr/bin/composer /usr/bin/composer`);
    expect(withComposer).toContain("composer install --no-dev");
  });

  it("rust: cargo build, the binary named after the package", () => {
    const d = gen("rust", ["Cargo.toml", "src"], { cargoToml: '[package]\nname = "hello-web"\nversion = "0.1.0"\n\n[dependencies]\nname = "x"\n' });
    expect(d).toContain(`FROM ${REG}/rust:1-slim AS build`);
    expect(d).toContain("RUN cargo build --release");
    expect(d).toContain("COPY --from=build /src/target/release/hello-web /app");
    expect(d).toMatch(new RegExp(`^FROM ${REG}/debian:bookworm-slim$`, "m"));
    expect(cargoPackageName('[package]\nname = "x; rm -rf /"')).toBeNull();
  });

  it("static: busybox httpd serving the tree on the port", () => {
    const d = gen("static", ["index.html"]);
    expect(d).toMatch(new RegExp(`^FROM ${REG}/busybox:1\\.36$`, "m"));
    expect(d).toContain("COPY . /www");
    expect(d).toContain('CMD ["httpd", "-f", "-v", "-p", "3000", "-h", "/www"]');
  });
});
