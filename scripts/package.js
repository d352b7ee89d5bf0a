#!/usr/bin/env node
// Builds the npm packages: the main package (JavaScript, types, the loader) and one package per
// platform holding the addon and the ONNX Runtime library it loads (so that installing fetches
// nothing from outside the npm registry).
//
//   node scripts/package.js build [TRIPLE]  the Linux addon for glibc 2.17+ (default: this machine's),
//                                           with gcc from @napi-rs/cross-toolchain-*, into npm/<platform>/
//   node scripts/package.js libs            ONNX Runtime's library and licence into every npm/<platform>/
//   node scripts/package.js pack OUT        npm pack the main package and each platform package that has
//                                           its addon, into OUT; prints the sizes
//   node scripts/package.js all OUT         build, libs and pack
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

/** npm/<dir>: the Rust target, onnxruntime-node's folder for it, and the files besides the addon. */
const PLATFORMS = {
  'linux-x64-gnu': { triple: 'x86_64-unknown-linux-gnu', ort: 'linux/x64', libs: ['libonnxruntime.so.1'], toolchain: 'x64-target-x86_64@1.0.0' },
  'linux-arm64-gnu': { triple: 'aarch64-unknown-linux-gnu', ort: 'linux/arm64', libs: ['libonnxruntime.so.1'], toolchain: 'x64-target-aarch64@1.0.3' },
  'darwin-arm64': { triple: 'aarch64-apple-darwin', ort: 'darwin/arm64', libs: ['libonnxruntime.1.30.0.dylib'] },
  'win32-x64-msvc': { triple: 'x86_64-pc-windows-msvc', ort: 'win32/x64', libs: ['onnxruntime.dll'] },
};

function main() {
  const [command, arg] = process.argv.slice(2);
  const here = `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-unknown-linux-gnu`;
  if (command === 'build') build(arg || here);
  else if (command === 'libs') libs();
  else if (command === 'pack' && arg) pack(path.resolve(arg));
  else if (command === 'all' && arg) {
    build(here);
    libs();
    pack(path.resolve(arg));
  } else {
    console.error('usage: node scripts/package.js build [TRIPLE] | libs | pack OUT | all OUT');
    process.exit(2);
  }
}

function platformOf(triple) {
  const entry = Object.entries(PLATFORMS).find(([, p]) => p.triple === triple);
  if (!entry) throw new Error(`no npm package for ${triple}; the targets are ${Object.values(PLATFORMS).map((p) => p.triple).join(', ')}`);
  return entry;
}

/** The addon for a Linux triple, linked against glibc 2.17 so that it loads on glibc 2.28 systems. */
function build(triple) {
  const [dir, platform] = platformOf(triple);
  if (!platform.toolchain) throw new Error(`${triple} is built on its own runner (see .github/workflows/release.yml)`);
  const gcc = toolchain(triple, platform.toolchain);
  const var_ = triple.replace(/-/g, '_');
  const env = {
    ...process.env,
    [`CARGO_TARGET_${var_.toUpperCase()}_LINKER`]: `${gcc}-gcc`,
    [`CC_${var_}`]: `${gcc}-gcc`,
    [`CXX_${var_}`]: `${gcc}-g++`,
    [`AR_${var_}`]: `${gcc}-ar`,
    CARGO_TARGET_DIR: path.join(root, 'target', 'glibc'),
  };
  run('cargo', ['build', '--release', '--lib', '--target', triple], { env });
  const built = path.join(root, 'target', 'glibc', triple, 'release', 'libsemantic_search_native.so');
  fs.copyFileSync(built, path.join(root, 'npm', dir, `${pkg.napi.binaryName}.${dir}.node`));
}

/**
 * gcc of @napi-rs/cross-toolchain-<name> (gcc 4.8.5 with a glibc 2.17 sysroot, an x64 host),
 * unpacked once under .cache/toolchains/. `napi build --use-napi-cross` does the same, but needs
 * @napi-rs/lzma, which requires Node 22 and is not installable under Node 20.
 */
function toolchain(triple, name) {
  const dest = path.join(root, '.cache', 'toolchains', triple);
  const gcc = path.join(dest, 'bin', triple);
  if (fs.existsSync(`${gcc}-gcc`)) return gcc;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-toolchain-'));
  run('npm', ['pack', '--silent', `@napi-rs/cross-toolchain-${name}`, '--pack-destination', tmp]);
  const [tgz] = fs.readdirSync(tmp).filter((f) => f.endsWith('.tgz'));
  run('tar', ['xzf', path.join(tmp, tgz), '-C', tmp]);
  fs.mkdirSync(`${dest}.partial`, { recursive: true });
  run('tar', ['xJf', path.join(tmp, 'package', `${triple}.tar.xz`), '-C', `${dest}.partial`]);
  fs.renameSync(`${dest}.partial`, dest);
  fs.rmSync(tmp, { recursive: true, force: true });
  return gcc;
}

/** Copies each platform's ONNX Runtime library from the onnxruntime-node package (MIT) beside its addon. */
function libs() {
  const bin = path.join(root, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
  const ortVersion = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')).version;
  for (const [dir, platform] of Object.entries(PLATFORMS)) {
    for (const lib of platform.libs) fs.copyFileSync(path.join(bin, platform.ort, lib), path.join(root, 'npm', dir, lib));
    const notice = fs.readFileSync(path.join(root, 'npm', 'THIRD-PARTY-NOTICES.md'), 'utf8').replace('{ORT_VERSION}', ortVersion);
    fs.writeFileSync(path.join(root, 'npm', dir, 'THIRD-PARTY-NOTICES.md'), notice);
  }
}

/** The main package as npm publishes it after `napi pre-publish`: with its platform packages as optional dependencies. */
function pack(out) {
  fs.mkdirSync(out, { recursive: true });
  for (const f of fs.readdirSync(out).filter((f) => f.endsWith('.tgz'))) fs.rmSync(path.join(out, f));
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-stage-'));
  for (const file of ['index.js', 'index.d.ts', 'README.md', 'LICENSE']) {
    if (fs.existsSync(path.join(root, file))) fs.copyFileSync(path.join(root, file), path.join(stage, file));
  }
  fs.mkdirSync(path.join(stage, 'dist'));
  for (const file of fs.readdirSync(path.join(root, 'dist'))) fs.copyFileSync(path.join(root, 'dist', file), path.join(stage, 'dist', file));
  const main = { ...pkg, optionalDependencies: Object.fromEntries(Object.keys(PLATFORMS).map((dir) => [`${pkg.name}-${dir}`, pkg.version])) };
  delete main.devDependencies;
  delete main.overrides;
  delete main.scripts;
  fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(main, null, 2)}\n`);
  const packed = [npmPack(stage, out)];
  for (const dir of Object.keys(PLATFORMS)) {
    const node = path.join(root, 'npm', dir, `${pkg.napi.binaryName}.${dir}.node`);
    if (fs.existsSync(node)) packed.push(npmPack(path.join(root, 'npm', dir), out));
  }
  fs.rmSync(stage, { recursive: true, force: true });
  for (const p of packed) console.log(`packed ${p.filename}: ${mb(p.size)} MB, ${mb(p.unpackedSize)} MB unpacked, ${p.files.length} files`);
  fs.writeFileSync(path.join(out, 'packed.json'), JSON.stringify(packed, null, 2));
}

function npmPack(dir, out) {
  const json = execFileSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const [result] = JSON.parse(json);
  return { filename: result.filename, size: result.size, unpackedSize: result.unpackedSize, files: result.files.map((f) => f.path) };
}

function mb(bytes) {
  return (bytes / 1e6).toFixed(bytes < 1e6 ? 3 : 1);
}

function run(command, args, options = {}) {
  execFileSync(command, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...options });
}

main();
