/**
 * `npm run lint:docker [-- FILE...]`: checks Dockerfiles (./Dockerfile by default) with
 * dockerfile-utils and exits 1 on any finding. Its own `dockerfile-utils lint` fails only on errors;
 * here warnings (a deprecated instruction, a second CMD, JSON in single quotes, ...) fail too.
 */
import { readFileSync } from 'node:fs';
import dockerfileUtils from 'dockerfile-utils';

const { validate, ValidationSeverity } = dockerfileUtils;
const ERROR = ValidationSeverity.ERROR;

// Every check the validator can make, raised to an error.
const strict = {
  deprecatedMaintainer: ERROR,
  directiveCasing: ERROR,
  emptyContinuationLine: ERROR,
  instructionCasing: ERROR,
  instructionCmdMultiple: ERROR,
  instructionEntrypointMultiple: ERROR,
  instructionHealthcheckMultiple: ERROR,
  instructionJSONInSingleQuotes: ERROR,
  instructionWorkdirRelative: ERROR,
};

const files = process.argv.slice(2);
let findings = 0;
for (const file of files.length > 0 ? files : ['Dockerfile']) {
  const lines = readFileSync(file, 'utf8').split('\n');
  for (const d of validate(lines.join('\n'), strict)) {
    findings += 1;
    const line = d.range.start.line;
    process.stderr.write(`${file}:${line + 1}:${d.range.start.character + 1}: ${d.message}\n  ${lines[line] ?? ''}\n`);
  }
}
if (findings > 0) {
  process.stderr.write(`lint:docker: ${findings} problem${findings === 1 ? '' : 's'}\n`);
  process.exit(1);
}
