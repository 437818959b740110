// The tests' polling lives in bench/ (the cluster bench waits the same way, and bench/ may not import tests/).
export { until } from '../../bench/until.js';
