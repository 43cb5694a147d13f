#!/usr/bin/env python3
"""A stand-in for Cyrus master(8) that records, byte for byte, what a service tells it.

usage: fake-master.py SCENARIO -- COMMAND...

Sets up what master/master.c gives a service (status pipe on fd 3, listening TCP socket on
fd 4, CYRUS_SERVICE and CYRUS_ID), runs COMMAND, plays SCENARIO against it as clients, and
prints one JSON object: the status messages [message, pid] in order, the service's pid and
exit status, and what the scenario observed. The real master is used by the other tests;
this one shows the exact message sequence, which the real master keeps to itself.
"""
import fcntl, json, os, select, signal, socket, struct, subprocess, sys, time

scenario = sys.argv[1]
cmd = sys.argv[sys.argv.index('--') + 1:]

r, w = os.pipe()
L = socket.socket()
L.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
L.bind(('127.0.0.1', 0))
L.listen(16)
port = L.getsockname()[1]
# Move both above 4 first, so that the dup2()s below cannot overwrite one another.
w_hi = fcntl.fcntl(w, fcntl.F_DUPFD, 10)
l_hi = fcntl.fcntl(L.fileno(), fcntl.F_DUPFD, 10)


def child_setup():
    os.dup2(w_hi, 3)
    os.dup2(l_hi, 4)


env = dict(os.environ, CYRUS_SERVICE='smmap', CYRUS_ID='0')
# close_fds=False: subprocess would otherwise close fds 3 and 4 after preexec_fn.
p = subprocess.Popen(cmd, preexec_fn=child_setup, close_fds=False, env=env,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
os.close(w)
os.close(w_hi)
os.close(l_hi)
os.set_blocking(r, False)

messages = []
buf = b''
out = {'port': port, 'pid': p.pid}


def poll_status(wait=0.0):
    global buf
    end = time.time() + wait
    while True:
        left = max(0.0, end - time.time())
        ready, _, _ = select.select([r], [], [], left)
        if ready:
            try:
                d = os.read(r, 4096)
            except BlockingIOError:
                d = b''
            if d:
                buf += d
                while len(buf) >= 8:
                    msg, pid = struct.unpack('=ii', buf[:8])
                    messages.append([msg, pid])
                    buf = buf[8:]
                continue
        if time.time() >= end:
            return


def ns(b):
    return str(len(b)).encode() + b':' + b + b','


def dial():
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    return s


def read_reply(s, timeout):
    s.settimeout(timeout)
    data = b''
    try:
        while True:
            c = s.recv(1)
            if not c:
                return None
            data += c
            if c == b':':
                break
        n = int(data[:-1])
        body = b''
        while len(body) < n + 1:
            d = s.recv(n + 1 - len(body))
            if not d:
                return None
            body += d
        return body[:-1].decode()
    except socket.timeout:
        return 'TIMEOUT'


def ask(s, key, timeout=10):
    s.sendall(ns(b'smmap ' + key.encode()))
    return read_reply(s, timeout)


def wait_exit(timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        poll_status(0.05)
        if p.poll() is not None:
            poll_status(0.1)
            return p.returncode, time.time() - t0
    return None, time.time() - t0


def finish(timeout=10):
    code, took = wait_exit(timeout)
    if code is None:
        p.kill()
        p.wait()
    out['exit'] = code
    out['exit_after'] = round(took, 3)


if scenario == 'uses':          # run with -U 3 -T 0
    out['replies'] = []
    for i in range(3):
        s = dial()
        out['replies'].append(ask(s, 'fred'))
        s.close()
        poll_status(0.2)
    finish()
elif scenario == 'idle':        # run with -T 1 (exit between 1 and 2 s after the last close)
    s = dial()
    out['replies'] = [ask(s, 'fred')]
    s.close()
    finish(6)
elif scenario == 'gate':        # run with -T 0: one connection at a time
    a = dial()
    out['a'] = ask(a, 'fred')
    b = dial()
    b.sendall(ns(b'smmap nosuch'))
    out['b_while_a_open'] = read_reply(b, 0.8)
    poll_status(0.1)
    out['messages_while_busy'] = len(messages)
    out['a_again'] = ask(a, 'fred')
    a.close()
    out['b_after_a_closed'] = read_reply(b, 5)
    b.close()
    poll_status(0.3)
    p.send_signal(signal.SIGTERM)
    finish()
elif scenario == 'term-idle':   # SIGTERM before any client
    time.sleep(1.5)
    p.send_signal(signal.SIGTERM)
    finish()
elif scenario == 'term-busy':   # SIGTERM while a client keeps an idle connection open
    a = dial()
    out['a'] = ask(a, 'fred')
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    out['a_after_term'] = read_reply(a, 5)   # None: closed by us, no reply lost
    finish()
elif scenario == 'hup-idle':    # SIGHUP between connections: exit, telling the master
    a = dial()
    out['a'] = ask(a, 'fred')
    a.close()
    poll_status(0.3)
    p.send_signal(signal.SIGHUP)
    finish()
elif scenario == 'orphan':      # the master dies (no signal to us): we must not wait for ever
    s = dial()
    out['replies'] = [ask(s, 'fred')]
    s.close()
    poll_status(0.2)
    out['messages'] = messages
    print(json.dumps(out), flush=True)
    os._exit(0)
elif scenario == 'bad-config':  # a service that cannot start still tells the master
    finish()
else:
    sys.exit('unknown scenario ' + scenario)

out['messages'] = messages
out['stderr'] = p.stderr.read().decode(errors='replace')[-2000:]
print(json.dumps(out))
