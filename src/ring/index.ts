export { Ring, TOKENS_PER_WEIGHT, MAX_WEIGHT, MAX_TOTAL_WEIGHT, totalWeight, type RingMember, type Token } from './ring.js';
export { ringPosition, keyPosition, segmentOf, segmentEnd, RING_BITS, RING_SIZE, SEGMENT_BITS, SEGMENTS } from './hash.js';
