/** Test certificates for the mesh suite: real ones (adapters check chains, and etcd checks every client). */
import { generateKeyPairSync, randomBytes } from "node:crypto"
import { MeshPlan } from "@sovereign/core"
import forge from "node-forge"
import type { KeyPair } from "../MeshWorld.js"

const freshKey = () => generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString()

type Usage = "authority" | "client" | "server"

const forgeCertificate = (key: string, commonName: string, usage: Usage, dnsNames: ReadonlyArray<string> = []) => {
  const cert = forge.pki.createCertificate()
  const privateKey = forge.pki.privateKeyFromPem(key) as forge.pki.rsa.PrivateKey
  cert.publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e)
  const serial = randomBytes(12)
  serial[0] = serial[0]! & 0x7f
  cert.serialNumber = serial.toString("hex")
  cert.validity.notBefore = new Date(Date.now() - 3_600_000)
  cert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000)
  cert.setSubject([{ name: "commonName", value: commonName }])
  cert.setExtensions(
    usage === "authority"
      ? [
          { name: "basicConstraints", cA: true, critical: true },
          { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true }
        ]
      : [
          { name: "basicConstraints", cA: false },
          { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
          { name: "extKeyUsage", clientAuth: true, serverAuth: usage === "server" },
          ...(dnsNames.length === 0 ? [] : [{ name: "subjectAltName", altNames: dnsNames.map((value) => ({ type: 2, value })) }])
        ]
  )
  return cert
}

export const signed = (ca: KeyPair, commonName: string, usage: Usage, dnsNames: ReadonlyArray<string> = []): KeyPair => {
  const key = freshKey()
  const cert = forgeCertificate(key, commonName, usage, dnsNames)
  cert.setIssuer(forge.pki.certificateFromPem(ca.cert).subject.attributes)
  cert.sign(forge.pki.privateKeyFromPem(ca.key) as forge.pki.rsa.PrivateKey, forge.md.sha256.create())
  return { cert: forge.pki.certificateToPem(cert), key }
}

/** A self-signed CA standing in for a region's `cilium-ca`. */
export const testAuthority = (commonName: string): KeyPair => {
  const key = freshKey()
  const cert = forgeCertificate(key, commonName, "authority")
  cert.setIssuer(cert.subject.attributes)
  cert.sign(forge.pki.privateKeyFromPem(key) as forge.pki.rsa.PrivateKey, forge.md.sha256.create())
  return { cert: forge.pki.certificateToPem(cert), key }
}

/** A CN=remote client certificate signed by `ca`, like the chart's `clustermesh-apiserver-remote-cert`. */
export const testRemoteCertificate = (ca: KeyPair): KeyPair => signed(ca, "remote", "client")

/** The certificate of a region's clustermesh-apiserver etcd, under the names it is dialled by. */
export const testServerCertificate = (ca: KeyPair): KeyPair =>
  signed(ca, "clustermesh-apiserver", "server", [`*.${MeshPlan.meshDomain}`, `clustermesh-apiserver.${MeshPlan.namespace}.svc`])
