/** A valid one-region request for the orchestrator tests, on the fake cloud ("fake", region "r1"). */
export const request = {
  sovereignFQDN: "t1.example.com",
  orgName: "Example",
  orgEmail: "ops@example.com",
  regions: [{ provider: "fake", cloudRegion: "r1", controlPlaneSize: "small" }],
  sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx ops@example.com"
}
