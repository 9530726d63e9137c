export { Ring, TOKENS_PER_WEIGHT, MAX_WEIGHT, MAX_TOTAL_WEIGHT, totalWeight, type RingMember, type Token } from './ring.js';
export { ringPosition, keyPosition, RING_BITS, RING_SIZE } from './hash.js';
