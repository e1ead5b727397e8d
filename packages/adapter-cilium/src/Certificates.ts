/** Certificate checks and minting for ClusterMesh: the peer's CN=remote client certificate, signed by the peer's CA. */
import { Either } from "effect"
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, sign } from "node:crypto"
import type { KeyObject } from "node:crypto"
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
  if (Date.parse(cert.validTo) <= now)
    return `clustermesh-apiserver-remote-cert expired at ${new Date(Date.parse(cert.validTo)).toISOString()}`
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
    ...(isAuthority
      ? []
      : [{ name: "extKeyUsage", serverAuth: options.usages.includes("serverAuth"), clientAuth: options.usages.includes("clientAuth") }]),
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

const { asn1 } = forge

/** Present in node-forge, missing from its type definitions. */
interface ForgeTbs {
  readonly getTBSCertificate: (cert: forge.pki.Certificate) => forge.asn1.Asn1
}

/** The X.509 signature algorithm for a CA key, and how node:crypto signs with it. */
const signatureAlgorithm = (
  caKey: KeyObject
): Either.Either<{ readonly oid: string; readonly withNull: boolean; readonly digest: string | null }, string> => {
  switch (caKey.asymmetricKeyType) {
    case "rsa":
      return Either.right({ oid: "1.2.840.113549.1.1.11", withNull: true, digest: "sha256" }) // sha256WithRSAEncryption
    case "ec": {
      const curve = caKey.asymmetricKeyDetails?.namedCurve
      return Either.right(
        curve === "secp384r1"
          ? { oid: "1.2.840.10045.4.3.3", withNull: false, digest: "sha384" }
          : curve === "secp521r1"
            ? { oid: "1.2.840.10045.4.3.4", withNull: false, digest: "sha512" }
            : { oid: "1.2.840.10045.4.3.2", withNull: false, digest: "sha256" }
      )
    }
    case "ed25519":
      return Either.right({ oid: "1.3.101.112", withNull: false, digest: null })
    default:
      return Either.left(`cannot sign with a ${caKey.asymmetricKeyType ?? "unknown"} cilium-ca key`)
  }
}

const algorithmIdentifier = (algorithm: { readonly oid: string; readonly withNull: boolean }) =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(algorithm.oid).getBytes()),
    ...(algorithm.withNull ? [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, "")] : [])
  ])

/** The CA's subject (byte-exact, to become the issuer) and its subjectKeyIdentifier, read from its DER. */
const authorityNames = (caPem: string) => {
  const der = forge.pem.decode(caPem)[0]?.body
  if (der === undefined) throw new Error("no PEM block")
  const certificate = asn1.fromDer(der)
  const tbs = (certificate.value as Array<forge.asn1.Asn1>)[0]!.value as Array<forge.asn1.Asn1>
  const offset = tbs[0]!.tagClass === asn1.Class.CONTEXT_SPECIFIC ? 1 : 0 // explicit [0] version present
  const subject = tbs[offset + 4]!
  const extensions = tbs.find((node) => node.tagClass === asn1.Class.CONTEXT_SPECIFIC && node.type === 3)
  const keyId = ((extensions?.value as Array<forge.asn1.Asn1> | undefined)?.[0]?.value as Array<forge.asn1.Asn1> | undefined)
    ?.map((extension) => extension.value as Array<forge.asn1.Asn1>)
    .find((parts) => asn1.derToOid(parts[0]!.value as string) === "2.5.29.14")
  const keyIdentifier = keyId === undefined ? undefined : (asn1.fromDer(keyId[keyId.length - 1]!.value as string).value as string)
  return { subject, keyIdentifier }
}

/**
 * Issues a certificate signed by `ca` with a fresh RSA key. node-forge builds the certificate;
 * node:crypto signs it, so RSA, ECDSA (certgen's and cert-manager's usual choice) and Ed25519
 * authorities all work.
 */
export const issue = (ca: KeyPair, options: IssueOptions): Either.Either<KeyPair, string> => {
  try {
    const caKey = createPrivateKey(ca.key)
    const algorithm = signatureAlgorithm(caKey)
    if (Either.isLeft(algorithm)) return Either.left(algorithm.left)
    const authority = authorityNames(ca.cert)
    const key = freshKey()
    const cert = buildCertificate(key, options, false)
    if (authority.keyIdentifier !== undefined) {
      cert.setExtensions([...cert.extensions, { name: "authorityKeyIdentifier", keyIdentifier: authority.keyIdentifier }])
    }
    cert.siginfo.algorithmOid = algorithm.right.oid
    const tbs = (forge.pki as unknown as ForgeTbs).getTBSCertificate(cert)
    const fields = tbs.value as Array<forge.asn1.Asn1>
    fields[2] = algorithmIdentifier(algorithm.right)
    fields[3] = authority.subject
    const tbsDer = asn1.toDer(tbs).getBytes()
    const signature = sign(algorithm.right.digest, Buffer.from(tbsDer, "binary"), caKey)
    const certificate = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      tbs,
      algorithmIdentifier(algorithm.right),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(0) + signature.toString("binary"))
    ])
    const pem = forge.pem.encode({ type: "CERTIFICATE", body: asn1.toDer(certificate).getBytes() }).replace(/\r\n/g, "\n")
    return Either.right({ cert: pem, key })
  } catch (error) {
    return Either.left(`cannot mint a certificate with the cilium-ca (${describe(error)})`)
  }
}

/** The client certificate peers present to this region's clustermesh-apiserver: CN=remote, signed by this region's CA. */
export const mintRemote = (ca: KeyPair, now: number): Either.Either<KeyPair, string> =>
  issue(ca, { commonName: remoteCommonName, usages: ["clientAuth"], now, validityDays: remoteValidityDays })
