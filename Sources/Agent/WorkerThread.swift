// The agent's one background thread: preparing (fine-tune, statistics) or scoring a model
// runs here so the link keeps its heartbeats. A job returns the AgentEvent its outcome is;
// the daemon loop polls for it. One job at a time (AgentMemory.worker says which).

import Foundation

final class WorkerThread: @unchecked Sendable {
    private let lock = NSLock()
    private var result: AgentEvent?
    private var busy = false

    /// Running, or finished with a result nobody took yet: a new job must wait, or its start
    /// would overwrite that result.
    var isBusy: Bool { lock.lock(); defer { lock.unlock() }; return busy || result != nil }

    func start(_ job: @escaping @Sendable () -> AgentEvent) {
        lock.lock(); busy = true; result = nil; lock.unlock()
        Thread.detachNewThread { [self] in
            let r = job()
            lock.lock(); result = r; busy = false; lock.unlock()
        }
    }

    /// A job is running now (its result not in yet).
    var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return busy }

    func take() -> AgentEvent? {
        lock.lock(); defer { lock.unlock() }
        guard !busy, let r = result else { return nil }
        result = nil
        return r
    }
}
