/** Certificate checks and minting for ClusterMesh: the peer's CN=remote client certificate, signed by the peer's CA. */
import { Either } from "effect"
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from "node:crypto"
import forge from "node-forge"

/** A certificate and its private key, both PEM. */
export interface KeyPair {
  readonly cert: string
  readonly key: string
}

export type Usage = "serverAuth" | "clientAuth"

export interface IssueOptions {
  readonly commonName: string
  readonly dnsNames?: ReadonlyArray<string>
  readonly ipAddresses?: ReadonlyArray<string>
  readonly usages: ReadonlyArray<Usage>
  /** Unix milliseconds the certificate is valid from (one minute of slack is subtracted for skew). */
  readonly now: number
  readonly validityDays: number
}

/** Cilium's certgen gives the remote client certificate three years; so do we. */
export const remoteValidityDays = 3 * 365
/** etcd's RBAC in the clustermesh-apiserver admits the user `remote`; any other CN is denied (t129). */
export const remoteCommonName = "remote"

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** Parses one PEM certificate; the failure names what is wrong, never the bytes. */
export const parse = (pem: string): Either.Either<X509Certificate, string> => {
  try {
    return Either.right(new X509Certificate(pem))
  } catch (error) {
    return Either.left(`not a PEM certificate (${describe(error)})`)
  }
}

/** Whether `certPem` was issued and signed by `caPem` (RSA and ECDSA authorities alike). */
export const isSignedBy = (certPem: string, caPem: string): boolean =>
  Either.match(Either.all([parse(certPem), parse(caPem)]), {
    onLeft: () => false,
    onRight: ([cert, ca]) => cert.checkIssued(ca) && cert.verify(ca.publicKey)
  })

/**
 * Why a region's remote client certificate cannot be handed to its peers, if it cannot: it must
 * parse, be signed by the region's own CA (a cert signed by another CA fails the handshake, t126),
 * be valid now, and match its key. Messages never contain key material.
 */
export const checkRemote = (remote: KeyPair, caPem: string, now: number): string | undefined => {
  const parsed = parse(remote.cert)
  if (Either.isLeft(parsed)) return `clustermesh-apiserver-remote-cert: ${parsed.left}`
  const ca = parse(caPem)
  if (Either.isLeft(ca)) return `cilium-ca: ${ca.left}`
  const cert = parsed.right
  if (!(cert.checkIssued(ca.right) && cert.verify(ca.right.publicKey))) {
    return `clustermesh-apiserver-remote-cert (${cert.subject.replace(/\n/g, ", ")}) is not signed by the region's cilium-ca`
  }
  if (Date.parse(cert.validTo) <= now) return `clustermesh-apiserver-remote-cert expired at ${new Date(Date.parse(cert.validTo)).toISOString()}`
  try {
    if (!cert.checkPrivateKey(createPrivateKey(remote.key))) return "clustermesh-apiserver-remote-cert does not match its key"
  } catch {
    return "clustermesh-apiserver-remote-cert key is not a PEM private key"
  }
  return undefined
}

/** Checks that the CA's certificate and key belong together, so minting with it is meaningful. */
export const checkAuthority = (ca: KeyPair): string | undefined => {
  const parsed = parse(ca.cert)
  if (Either.isLeft(parsed)) return `cilium-ca: ${parsed.left}`
  try {
    if (!parsed.right.checkPrivateKey(createPrivateKey(ca.key))) return "cilium-ca certificate does not match its key"
  } catch {
    return "cilium-ca key is not a PEM private key"
  }
  return undefined
}

const serialNumber = (): string => {
  const bytes = randomBytes(16)
  bytes[0] = bytes[0]! & 0x7f // positive INTEGER
  return bytes.toString("hex")
}

const freshKey = () => {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 })
  return privateKey.export({ type: "pkcs8", format: "pem" }).toString()
}

const buildCertificate = (subjectKey: string, options: IssueOptions, isAuthority: boolean) => {
  const cert = forge.pki.createCertificate()
  const privateKey = forge.pki.privateKeyFromPem(subjectKey) as forge.pki.rsa.PrivateKey
  cert.publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e)
  cert.serialNumber = serialNumber()
  cert.validity.notBefore = new Date(options.now - 60_000)
  cert.validity.notAfter = new Date(options.now + options.validityDays * 86_400_000)
  cert.setSubject([{ name: "commonName", value: options.commonName }])
  const altNames = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip }))
  ]
  cert.setExtensions([
    { name: "basicConstraints", cA: isAuthority, critical: true },
    isAuthority
      ? { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }
      : { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    ...(isAuthority ? [] : [{ name: "extKeyUsage", serverAuth: options.usages.includes("serverAuth"), clientAuth: options.usages.includes("clientAuth") }]),
    ...(altNames.length > 0 ? [{ name: "subjectAltName", altNames }] : []),
    { name: "subjectKeyIdentifier" }
  ])
  return cert
}

/** A self-signed certificate authority (for tests and for regions that bring none). */
export const authority = (commonName: string, now: number, validityDays = 3650): KeyPair => {
  const key = freshKey()
  const cert = buildCertificate(key, { commonName, usages: [], now, validityDays }, true)
  cert.setIssuer(cert.subject.attributes)
  cert.sign(forge.pki.privateKeyFromPem(key) as forge.pki.rsa.PrivateKey, forge.md.sha256.create())
  return { cert: forge.pki.certificateToPem(cert), key }
}

/**
 * Issues a certificate signed by `ca` with a fresh RSA key. node-forge signs with RSA authorities
 * only; an ECDSA `cilium-ca` (certgen's default) is refused with a clear reason, and such a region
 * needs its chart-made remote cert.
 */
export const issue = (ca: KeyPair, options: IssueOptions): Either.Either<KeyPair, string> => {
  try {
    const caKey = createPrivateKey(ca.key)
    if (caKey.asymmetricKeyType !== "rsa") {
      return Either.left(`cannot mint with a ${caKey.asymmetricKeyType ?? "non-RSA"} cilium-ca key: only RSA authorities are supported`)
    }
    const caCert = forge.pki.certificateFromPem(ca.cert)
    const key = freshKey()
    const cert = buildCertificate(key, options, false)
    cert.setIssuer(caCert.subject.attributes)
    const caKeyId = caCert.getExtension("subjectKeyIdentifier") as { subjectKeyIdentifier?: string } | null
    if (caKeyId?.subjectKeyIdentifier !== undefined) {
      cert.setExtensions([...cert.extensions, { name: "authorityKeyIdentifier", keyIdentifier: forge.util.hexToBytes(caKeyId.subjectKeyIdentifier) }])
    }
    cert.sign(forge.pki.privateKeyFromPem(caKey.export({ type: "pkcs1", format: "pem" }).toString()) as forge.pki.rsa.PrivateKey, forge.md.sha256.create())
    return Either.right({ cert: forge.pki.certificateToPem(cert), key })
  } catch (error) {
    return Either.left(`cannot mint a certificate with the cilium-ca (${describe(error)})`)
  }
}

/** The client certificate peers present to this region's clustermesh-apiserver: CN=remote, signed by this region's CA. */
export const mintRemote = (ca: KeyPair, now: number): Either.Either<KeyPair, string> =>
  issue(ca, { commonName: remoteCommonName, usages: ["clientAuth"], now, validityDays: remoteValidityDays })
