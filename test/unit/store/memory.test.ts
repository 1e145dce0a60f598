import { MemoryStore } from '../../../src/adapters/store/memory.js';
import { storeCompliance } from '../../integration/store/compliance.js';

storeCompliance('memory', () => Promise.resolve(new MemoryStore()));
