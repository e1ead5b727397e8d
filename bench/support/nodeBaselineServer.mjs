// A bare node:http server for the SSE benchmark's baseline, in a process of its own (for client counts
// whose sockets would not fit beside Sovereign's in one process): every response gets the bytes the
// parent sends, written with `response.write` in one loop, stamped on the monotonic clock all processes
// share. Messages: { type: "write", frame } → { type: "written", at }; { type: "stop" }.
import * as http from "node:http"

const now = () => Number(process.hrtime.bigint()) / 1e6
const responses = new Set()
const server = http.createServer((_request, response) => {
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
  response.write("event: snapshot\nid: 0\ndata: {}\n\n")
  responses.add(response)
  response.on("close", () => responses.delete(response))
})
server.listen(0, "127.0.0.1", () => process.send({ type: "listening", port: server.address().port }))
process.on("message", (message) => {
  if (message.type === "write") {
    const bytes = Buffer.from(message.frame, "utf8")
    const at = now()
    for (const response of responses) response.write(bytes)
    process.send({ type: "written", at })
  }
  if (message.type === "stop") {
    for (const response of responses) response.destroy()
    server.close(() => process.exit(0))
  }
})
