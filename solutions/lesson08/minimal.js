// Lesson 08: the minimal handler in Node.js, for comparing runtime start-up with Python's.
exports.handler = async (event) => ({ handler: "minimal" });
