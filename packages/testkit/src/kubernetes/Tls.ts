/** A throwaway certificate authority and server certificates for the protocol-faithful fakes. */
import forge from "node-forge"

export interface CertificateAuthority {
  readonly certPem: string
  readonly keyPem: string
}

export interface ServerCertificate {
  readonly certPem: string
  readonly keyPem: string
}

const serial = (): string => {
  // A positive serial: forge writes it as a signed DER integer.
  const bytes = forge.random.getBytesSync(16)
  const hex = forge.util.bytesToHex(bytes)
  return "0" + hex.slice(1)
}

const validity = (certificate: forge.pki.Certificate): void => {
  const now = Date.now()
  certificate.validity.notBefore = new Date(now - 60 * 60 * 1000)
  certificate.validity.notAfter = new Date(now + 365 * 24 * 60 * 60 * 1000)
}

/** A self-signed CA with the given common name (RSA 2048, SHA-256). */
export const makeCertificateAuthority = (commonName: string): CertificateAuthority => {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 })
  const certificate = forge.pki.createCertificate()
  certificate.publicKey = keys.publicKey
  certificate.serialNumber = serial()
  validity(certificate)
  const subject = [{ name: "commonName", value: commonName }]
  certificate.setSubject(subject)
  certificate.setIssuer(subject)
  certificate.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" }
  ])
  certificate.sign(keys.privateKey, forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(certificate), keyPem: forge.pki.privateKeyToPem(keys.privateKey) }
}

export interface ServerCertificateOptions {
  readonly commonName: string
  /** DNS subject alternative names. */
  readonly dnsNames: ReadonlyArray<string>
  /** IP subject alternative names. */
  readonly ipAddresses: ReadonlyArray<string>
  /** Also usable as a TLS client certificate. */
  readonly clientAuth?: boolean
}

let leafKeys: forge.pki.rsa.KeyPair | undefined
const issued = new Map<string, ServerCertificate>()

/**
 * A leaf certificate for a TLS server, signed by `authority`. Leaf certificates share one key pair
 * per process (generating RSA keys dominates a fake's start-up), and one certificate per CA and
 * names (forge signs in pure JavaScript; suites that start a fake per test paid for it every time);
 * trust still hangs on the CA, whose key is always fresh.
 */
export const makeServerCertificate = (authority: CertificateAuthority, options: ServerCertificateOptions): ServerCertificate => {
  const key = JSON.stringify([authority.certPem, options.commonName, options.dnsNames, options.ipAddresses, options.clientAuth === true])
  const known = issued.get(key)
  if (known !== undefined) return known
  const made = signServerCertificate(authority, options)
  issued.set(key, made)
  return made
}

const signServerCertificate = (authority: CertificateAuthority, options: ServerCertificateOptions): ServerCertificate => {
  const caCertificate = forge.pki.certificateFromPem(authority.certPem)
  const caKey = forge.pki.privateKeyFromPem(authority.keyPem)
  const keys = (leafKeys ??= forge.pki.rsa.generateKeyPair({ bits: 2048 }))
  const certificate = forge.pki.createCertificate()
  certificate.publicKey = keys.publicKey
  certificate.serialNumber = serial()
  validity(certificate)
  certificate.setSubject([{ name: "commonName", value: options.commonName }])
  certificate.setIssuer(caCertificate.subject.attributes)
  certificate.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true, clientAuth: options.clientAuth === true },
    {
      name: "subjectAltName",
      altNames: [...options.dnsNames.map((value) => ({ type: 2, value })), ...options.ipAddresses.map((ip) => ({ type: 7, ip }))]
    }
  ])
  certificate.sign(caKey, forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(certificate), keyPem: forge.pki.privateKeyToPem(keys.privateKey) }
}
