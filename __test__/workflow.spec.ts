// The release workflow cannot run here; it is checked against GitHub's workflow schema, and its
// build matrix against the package's targets and platform packages.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from './helpers';

const WORKFLOW = path.join(ROOT, '.github', 'workflows', 'release.yml');

describe('the release workflow', () => {
  it.each(['release.yml', 'ci.yml'])('%s is a valid GitHub Actions workflow', (file) => {
    const validator = path.join(ROOT, 'node_modules', '@action-validator', 'cli', 'cli.mjs');
    const workflow = path.join(ROOT, '.github', 'workflows', file);
    expect(() => execFileSync(process.execPath, [validator, workflow], { encoding: 'utf8', stdio: 'pipe' })).not.toThrow();
  });

  it('builds every target of package.json, each into its platform package', () => {
    const text = fs.readFileSync(WORKFLOW, 'utf8');
    const built = [...text.matchAll(/^\s+target: (\S+)$/gm)].map((m) => m[1]).sort();
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(built).toEqual([...pkg.napi.targets].sort());
    const platforms = [...text.matchAll(/^\s+platform: (\S+)$/gm)].map((m) => m[1]);
    const dirs = fs.readdirSync(path.join(ROOT, 'npm'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    expect([...new Set(platforms)].sort()).toEqual(dirs);
    expect(text).toMatch(/MACOSX_DEPLOYMENT_TARGET: '14\.0'/);
    expect(text).toMatch(/npm publish --provenance/);
  });
});
