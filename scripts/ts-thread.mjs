// A worker thread's entry when the service runs from its TypeScript sources (tests, `npm run
// dev`): Node 20 gives workers no loader of their own, so this one registers tsx's and then
// loads the module that `workerData.entry` names. The built service never uses it.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
