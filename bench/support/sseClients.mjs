// SSE stream clients for the benchmarks, run in a child process (its own event loop and file-descriptor
// budget, as real clients would have). Plain TCP sockets speak HTTP/1.1 and read SSE frames out of the
// body, stamped the moment the bytes reach JavaScript on the machine's monotonic clock
// (`process.hrtime`, the same in every process). Frames are only split at the blank line and their
// `id:` read: no HTTP client library (one thread's own parsing queued behind thousands of sockets).
//
// Messages from the parent:
//   { type: "open", group, host, port, request, count }  opens `count` connections sending `request`
//   { type: "stop" }                                     closes everything and exits
// Messages to the parent:
//   { type: "opened", group }                       every connection of the group is established
//   { type: "complete", group, id, arrivals }       every client of the group received the frame `id`
//   { type: "closed", group }                       a connection ended or failed (a dropped client)
//   { type: "failed", group, message }              a connection failed, or was answered other than 200
import * as net from "node:net"

const now = () => Number(process.hrtime.bigint()) / 1e6
const groups = new Map()
const sockets = []

const send = (message) => process.send(message)

const connect = (group, options) =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: options.host, port: options.port }, () => {
      socket.write(options.request)
      resolve()
    })
    socket.setNoDelay(true)
    socket.setEncoding("latin1")
    let buffer = ""
    let answered = false
    socket.on("data", (chunk) => {
      const at = now()
      buffer += chunk
      if (!answered) {
        answered = true
        group.answered++
        if (!buffer.startsWith("HTTP/1.1 200 ")) send({ type: "failed", group: group.name, message: buffer.slice(0, 400) })
      }
      let end = buffer.indexOf("\n\n")
      while (end >= 0) {
        const idAt = buffer.lastIndexOf("\nid: ", end)
        const start = buffer.startsWith("id: ") ? 0 : idAt >= 0 ? idAt + 1 : -1
        if (start >= 0 && start < end) {
          const lineEnd = buffer.indexOf("\n", start)
          const id = buffer.slice(start + 4, lineEnd)
          let list = group.arrivals.get(id)
          if (list === undefined) group.arrivals.set(id, (list = []))
          list.push(at)
          if (list.length === group.count) {
            group.arrivals.delete(id)
            send({ type: "complete", group: group.name, id, arrivals: list })
          }
        }
        buffer = buffer.slice(end + 2)
        end = buffer.indexOf("\n\n")
      }
    })
    socket.on("error", (error) => {
      if (!socket.connecting) return
      reject(error)
    })
    socket.on("close", () => {
      group.closed++
      if (!group.stopping) send({ type: "closed", group: group.name })
    })
    sockets.push(socket)
  })

process.on("message", async (message) => {
  if (message.type === "stop") {
    for (const group of groups.values()) group.stopping = true
    for (const socket of sockets) socket.destroy()
    process.exit(0)
  }
  if (message.type === "status") {
    const status = [...groups.values()].map((group) => ({
      group: group.name,
      answered: group.answered,
      closed: group.closed,
      partial: [...group.arrivals.entries()].map(([id, list]) => `${id}:${list.length}`).slice(0, 5)
    }))
    send({ type: "failed", group: "", message: `status ${JSON.stringify(status)}` })
  }
  if (message.type === "open") {
    const group = { name: message.group, count: message.count, arrivals: new Map(), stopping: false, answered: 0, closed: 0 }
    groups.set(message.group, group)
    try {
      for (let opened = 0; opened < message.count; opened += 100) {
        await Promise.all(Array.from({ length: Math.min(100, message.count - opened) }, () => connect(group, message)))
      }
      send({ type: "opened", group: message.group })
    } catch (error) {
      send({ type: "failed", group: message.group, message: String(error) })
    }
  }
})
