/**
 * agentd's native process control, in memory: spawn hands out pids, the test decides who exits,
 * and records what was killed. For test/unit/agentd (the Supervisor) and securityAgentdMain (runAgentd).
 */
import type { NativeProcessControl, ReapedChild, SpawnRequest } from '../../src/agentd/nativeProc';

export class FakeProcessTable implements NativeProcessControl {
  spawned: SpawnRequest[] = [];
  killed: [number, number][] = [];
  exited: ReapedChild[] = [];
  subreaper = 0;
  pipes = 0;
  nextPid = 100;
  failWith: Error | undefined;
  subreaperFails = false;
  killFails: Error | undefined;
  spawn(request: SpawnRequest): number {
    if (this.failWith) throw this.failWith;
    this.spawned.push(request);
    return this.nextPid++;
  }
  reap(): ReapedChild[] {
    const out = this.exited;
    this.exited = [];
    return out;
  }
  pipe(): [number, number] {
    this.pipes += 1;
    return [3, 4];
  }
  kill(pid: number, signal: number): boolean {
    if (this.killFails) throw this.killFails;
    this.killed.push([pid, signal]);
    return true;
  }
  becomeSubreaper(): void {
    this.subreaper += 1;
    if (this.subreaperFails) throw new Error('prctl says no');
  }
}
