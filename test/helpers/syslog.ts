// A private syslog socket (this machine has no /dev/log): a unix datagram socket bound by a
// small python3 process (Node has no unix datagram sockets) that prints each record it gets.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { waitFor } from './base';

export interface SyslogReceiver {
  readonly path: string;
  /** The records received so far, like `<21>Nov 21 11:03:39 smmapd[4242]: text`. */
  records(): string[];
  stop(): Promise<void>;
}

const PY = `
import os, socket, sys
p = sys.argv[1]
if os.path.exists(p): os.unlink(p)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(p)
os.chmod(p, 0o666)
print('ready', flush=True)
while True:
    d = s.recv(65536)
    sys.stdout.write(d.decode('utf-8', 'replace').replace('\\n', ' ') + '\\n')
    sys.stdout.flush()
`;

export async function startSyslogReceiver(path: string): Promise<SyslogReceiver> {
  const proc = spawn('python3', ['-c', PY, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  if (!(await waitFor(() => out.startsWith('ready') && existsSync(path), 5000))) {
    proc.kill('SIGKILL');
    throw new Error('syslog receiver did not start');
  }
  return {
    path,
    records: () => out.split('\n').slice(1).filter((l) => l !== ''),
    stop: async () => {
      proc.kill('SIGTERM');
      await waitFor(() => proc.exitCode !== null || proc.signalCode !== null, 3000);
    },
  };
}
