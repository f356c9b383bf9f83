/** The ledger: a library the payments code calls inside its own TransactWriteItems (README.md). */
export * from './accounts';
export * from './transfers';
export * from './fees';
export * from './commit';
export * from './balance';
export * from './conversion';
