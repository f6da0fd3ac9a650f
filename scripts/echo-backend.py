#!/usr/bin/env python3
"""A tiny TCP echo service for scripts/demo: every byte received is sent back.

Half-close aware: when the client finishes sending (FIN), the echo finishes
writing what it has and then closes its side too.

    python3 scripts/echo-backend.py [HOST] [PORT]     (default 127.0.0.1 7000)
"""
import socket
import socketserver
import sys


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 7000
    with Server((host, port), Echo) as srv:
        print(f"echo backend listening on {host}:{port}", flush=True)
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
