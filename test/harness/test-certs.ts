/**
 * A throwaway certificate authority for tests: a CA, a server certificate for 127.0.0.1 and
 * localhost, and client certificates, made with openssl into a folder the caller removes.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCertificate {
  certFile: string;
  keyFile: string;
}

export interface TestCertificates {
  /** PEM of the CA that signed everything below. */
  caFile: string;
  server: TestCertificate;
  /** One per requested client name (its certificate's common name). */
  clients: Record<string, TestCertificate>;
  /** Another CA's client certificate: well-formed, but not signed by caFile. */
  stranger: TestCertificate;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** EC P-256 keys: generated in milliseconds, and understood by Node, Java and openssl alike. */
function newCa(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  openssl(
    ['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  return { cert, key };
}

function issue(dir: string, ca: { cert: string; key: string }, name: string, extensions: string): TestCertificate {
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.pem`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, `${extensions}\n`);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`], dir);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', certFile, '-days', '2', '-extfile', extFile], dir);
  return { certFile, keyFile };
}

export function createTestCertificates(dir: string, clientNames: readonly string[] = []): TestCertificates {
  mkdirSync(dir, { recursive: true });
  const ca = newCa(dir, 'test-ca');
  const server = issue(dir, ca, 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  const clients = Object.fromEntries(clientNames.map((name) => [name, issue(dir, ca, name, 'extendedKeyUsage=clientAuth')]));
  const stranger = issue(dir, newCa(dir, 'other-ca'), 'stranger', 'extendedKeyUsage=clientAuth');
  return { caFile: ca.cert, server, clients, stranger };
}

/** Bundles a certificate and its key into a PKCS#12 keystore, as Java servers take them. */
export function toPkcs12(certificate: TestCertificate, caFile: string, out: string, password: string): void {
  openssl(['pkcs12', '-export', '-in', certificate.certFile, '-inkey', certificate.keyFile, '-certfile', caFile, '-name', 'server', '-out', out, '-passout', `pass:${password}`], join(out, '..'));
}
