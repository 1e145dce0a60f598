import { MemoryStore } from '../../../src/adapters/store/memory.js';
import { storeCompliance } from '../../compliance/store.js';

storeCompliance('memory', () => Promise.resolve(new MemoryStore()));
