/**
 * A virtual null-modem cable: two linked ptys made by socat. The simulator opens `devicePath`, the
 * gateway opens `gatewayPath`. socat keeps running when either end is closed and reopened.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { access, mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PtyPair {
  devicePath: string;
  gatewayPath: string;
  /** socat's process id (it holds both pty slaves itself). */
  socatPid: number;
  /** Stops socat and removes the links. Safe twice. */
  close(): Promise<void>;
}

const READY_TIMEOUT_MS = 5_000;

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export async function createPtyPair(opts: { socatPath?: string } = {}): Promise<PtyPair> {
  const dir = await mkdtemp(join(tmpdir(), 'msc-sim-pty-'));
  const devicePath = join(dir, 'dev');
  const gatewayPath = join(dir, 'gw');
  const child = spawn(
    opts.socatPath ?? 'socat',
    ['-d', '-d', `pty,raw,echo=0,link=${devicePath}`, `pty,raw,echo=0,link=${gatewayPath}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  let exited: string | null = null;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `socat exited (${signal ?? code})`;
      resolve();
    });
    child.once('error', (err) => {
      exited = `socat failed to start: ${err.message}`;
      resolve();
    });
  });

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    if (exited === null) {
      child.kill('SIGTERM');
      await exitedPromise;
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited !== null) {
      await close();
      throw new Error(`${exited}: ${stderr.trim()}`);
    }
    if ((await exists(devicePath)) && (await exists(gatewayPath))) break;
    if (Date.now() > deadline) {
      await close();
      throw new Error(`socat did not create the pty links within ${READY_TIMEOUT_MS} ms: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { devicePath, gatewayPath, socatPid: child.pid ?? -1, close };
}

/** Tells a serial link whether anybody holds the far end of its line open. */
export interface PeerGate {
  start(onChange: (open: boolean) => void): void;
  stop(): void;
}

const PEER_POLL_MS = 100;
const PEER_SCAN_MS = 500;

/**
 * Watches which process holds the gateway end of a pty open (Linux /proc), so a pty line counts as
 * plugged in only while a gateway has it open. Opening a port flushes its input (serialport does
 * tcflush), so frames written before that would vanish unseen; with this gate they are counted as
 * dropped instead and the gateway gets a HELLO when it opens the line, as after a cable re-plug.
 * Without /proc the line counts as always open.
 */
export class PtyPeerWatch implements PeerGate {
  private timer: NodeJS.Timeout | null = null;
  private holder: { pid: number; fd: string } | null = null;
  private target = '';
  private stopped = false;

  constructor(private readonly gatewayPath: string, private readonly excludePids: number[]) {}

  start(onChange: (open: boolean) => void): void {
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        this.target ||= await realpath(this.gatewayPath);
        const wasOpen = this.holder !== null;
        this.holder = wasOpen && this.stillHeld() ? this.holder : this.scan();
        if ((this.holder !== null) !== wasOpen && !this.stopped) onChange(this.holder !== null);
      } catch {
        if (!this.stopped && this.holder === null) {
          this.holder = { pid: -1, fd: '' };
          onChange(true);
          return; // no /proc (or no pty any more): stop watching
        }
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.holder ? PEER_POLL_MS : PEER_SCAN_MS);
    };
    void tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private stillHeld(): boolean {
    if (!this.holder) return false;
    try {
      return readlinkSync(`/proc/${this.holder.pid}/fd/${this.holder.fd}`) === this.target;
    } catch {
      return false;
    }
  }

  /** Sync on purpose: a few hundred readlinks cost ~1 ms this way, ten times that through promises. */
  private scan(): { pid: number; fd: string } | null {
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || this.excludePids.includes(pid)) continue;
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === this.target) return { pid, fd };
        } catch {
          // the process or fd went away meanwhile
        }
      }
    }
    return null;
  }
}
