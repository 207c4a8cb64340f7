# echo_server.py ADDR PORT [N]: echoes every byte of each connection back,
# one connection at a time; with N, exits after N connections. A plain
# (or, under usmc-run, a usmc) peer for the preload tests.
import socket, sys

addr, port = sys.argv[1], int(sys.argv[2])
left = int(sys.argv[3]) if len(sys.argv) > 3 else -1
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((addr, port))
l.listen(64)
while left != 0:
    c, _ = l.accept()
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.close()
    left -= 1
