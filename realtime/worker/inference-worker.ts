// The inference worker thread's entry (ModelRuntime's default workerEntry): the real restylers.
import { serveInference } from './serve-inference.js';

serveInference();
